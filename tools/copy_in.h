// COPY ... FROM STDIN into a target table, fed with stored tuples.
#ifndef PGTRAIL_TOOLS_COPY_IN_H_
#define PGTRAIL_TOOLS_COPY_IN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/pgtrail.pb.h"
#include "storage/pg.h"
#include "storage/status.h"
#include "storage/store.h"

namespace pgtrail {

class CopyIn {
 public:
  // REQUIRES: conn outlives the CopyIn. `what` names the table in errors.
  CopyIn(PgConn* conn, std::string what) : conn_(conn), what_(std::move(what)) {}
  CopyIn(const CopyIn&) = delete;
  CopyIn& operator=(const CopyIn&) = delete;

  // Starts COPY table_sql (columns) FROM STDIN; table_sql is already quoted.
  Status Begin(const std::string& table_sql, const std::vector<std::string>& columns);
  // Sends `copies` copies of the row. A row holding an uncaptured TOAST value
  // ('?') fails with kCorruption: the restore would not be exact.
  Status Add(const pb::Tuple& row, uint64_t copies = 1);
  // Sends `copies` copies of the row a multiset rowkey holds under rel
  // (AppendCopyTextFromRowKey).
  Status AddRowKey(const pb::Relation& rel, std::string_view rowkey, uint64_t copies);
  // Sends the new tuple of a stored change (a final image), as Add does.
  Status AddImage(const ChangeImage& image);
  // Ends the copy; with a failed status, aborts it and returns that status.
  Status End(Status status = Status::OK());

  uint64_t rows() const { return rows_; }

 private:
  Status Send();
  // kCorruption for a row COPY cannot carry exactly.
  Status CheckKinds(std::string_view kinds, size_t values) const;
  // Repeats the line from buffer_[start] to `copies` lines in all.
  Status Repeat(size_t start, uint64_t copies);

  PgConn* conn_;
  std::string what_;
  std::string buffer_;
  std::string scratch_;
  uint64_t rows_ = 0;
  bool active_ = false;
};

// The quoted column list of a layout.
std::vector<std::string> ColumnNames(const pb::Relation& layout);

}  // namespace pgtrail

#endif  // PGTRAIL_TOOLS_COPY_IN_H_
