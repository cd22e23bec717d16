// Splitting a SQL string, as a client sent it, into statements and tokens:
// enough of PostgreSQL's lexer to find the semicolons that end statements
// and to recognise the few schema changes a restore may reorder.
#ifndef PGTRAIL_TOOLS_SQL_STATEMENTS_H_
#define PGTRAIL_TOOLS_SQL_STATEMENTS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgtrail {

// The statements of `sql`, each without its terminating semicolon and with
// surrounding white space trimmed; empty statements (nothing but white
// space and comments) are left out. Semicolons
// inside 'literals' (also E'...' with backslash escapes), "identifiers",
// $tag$dollar quotes$tag$, -- comments and nested /* comments */ do not
// split. Parentheses are not tracked: PostgreSQL ends a statement at any
// top-level semicolon too (CREATE RULE bodies excepted).
std::vector<std::string> SplitSqlStatements(std::string_view sql);

// One token of a statement; comments and white space are not tokens.
struct SqlToken {
  enum Kind {
    kWord,         // a keyword or unquoted identifier
    kQuotedIdent,  // "..."
    kLiteral,      // '...', E'...', $tag$...$tag$
    kPunct,        // one character: ( ) , . ; * and the like
    kOther,        // a number or $1
  };
  Kind kind = kOther;
  size_t offset = 0;       // in the statement
  std::string_view text;   // as written
};

// The tokens of `sql` (a view into it), lexed as SplitSqlStatements does.
std::vector<SqlToken> TokenizeSql(std::string_view sql);

// The name an identifier token stands for: a word folded to lower case, a
// quoted identifier without its quotes; empty for other tokens.
std::string IdentifierName(const SqlToken& token);

// True if running `statement` (a schema statement as replayed by a restore)
// neither changes the rows of the table named `relname` nor depends on which
// rows it holds beyond constraints that the table's later rows satisfy too.
// Only a few forms qualify, each recognised exactly: ALTER TABLE ... ADD
// [CONSTRAINT c] PRIMARY KEY | UNIQUE with no other subcommand, CREATE
// [UNIQUE] INDEX, CREATE TABLE with a column list (not AS, PARTITION OF or OF
// a type, and not naming `relname` but as a foreign key's target), CREATE
// SEQUENCE, CREATE VIEW, COMMENT. A restore may then load that table's rows
// from before and after the statement in one go.
bool LeavesRowsAlone(std::string_view statement, const std::string& relname);

// The table an index-building statement is about: ALTER TABLE name ADD
// [CONSTRAINT c] PRIMARY KEY | UNIQUE (no other subcommand, no USING INDEX)
// or CREATE [UNIQUE] INDEX ... ON [ONLY] name: its relname (without schema);
// empty for any other statement.
std::string IndexBuildTable(std::string_view statement);

// True if the statement is CREATE [GLOBAL | LOCAL] [TEMP | TEMPORARY |
// UNLOGGED] TABLE [IF NOT EXISTS] name ( ... ) without AS: a new, empty table.
bool IsCreateTable(std::string_view statement);

// True if any identifier of the statement is `name`.
bool MentionsName(std::string_view statement, const std::string& name);

// True if the statement is a schema change by its first keyword (CREATE,
// ALTER, DROP, COMMENT, GRANT, REVOKE, SECURITY LABEL, IMPORT FOREIGN SCHEMA,
// REFRESH), after leading comments and white space.
bool IsSchemaStatement(std::string_view statement);

}  // namespace pgtrail

#endif  // PGTRAIL_TOOLS_SQL_STATEMENTS_H_
