// Splitting a SQL string, as a client sent it, into statements: enough of
// PostgreSQL's lexer to find the semicolons that end statements.
#ifndef PGTRAIL_TOOLS_SQL_STATEMENTS_H_
#define PGTRAIL_TOOLS_SQL_STATEMENTS_H_

#include <string>
#include <string_view>
#include <vector>

namespace pgtrail {

// The statements of `sql`, each without its terminating semicolon and with
// surrounding white space trimmed; empty statements are left out. Semicolons
// inside 'literals' (also E'...' with backslash escapes), "identifiers",
// $tag$dollar quotes$tag$, -- comments and nested /* comments */ do not
// split. Parentheses are not tracked: PostgreSQL ends a statement at any
// top-level semicolon too (CREATE RULE bodies excepted).
std::vector<std::string> SplitSqlStatements(std::string_view sql);

// True if the statement is a schema change by its first keyword (CREATE,
// ALTER, DROP, COMMENT, GRANT, REVOKE, SECURITY LABEL, IMPORT FOREIGN SCHEMA,
// REFRESH), after leading comments and white space.
bool IsSchemaStatement(std::string_view statement);

}  // namespace pgtrail

#endif  // PGTRAIL_TOOLS_SQL_STATEMENTS_H_
