#include "tools/copy_in.h"

#include "storage/copy_text.h"
#include "tools/row_images.h"

namespace pgtrail {
namespace {
// COPY data goes out in pieces this size: small enough that the server parses
// one while the next is built (1 MB pieces left it idle: bench_bulk's COPY
// 1.12 s, against 0.62 s with 64 kB), large enough to cost few sends.
constexpr size_t kPieceBytes = 32u << 10;
}  // namespace

std::vector<std::string> ColumnNames(const pb::Relation& layout) {
  std::vector<std::string> names;
  for (const pb::Column& c : layout.columns()) names.push_back(QuoteIdent(c.name()));
  return names;
}

Status CopyIn::Begin(const std::string& table_sql, const std::vector<std::string>& columns) {
  std::string sql = "COPY " + table_sql;
  if (!columns.empty()) {  // a table without columns takes no list
    sql += " (";
    for (size_t i = 0; i < columns.size(); i++) sql += (i > 0 ? ", " : "") + columns[i];
    sql += ")";
  }
  sql += " FROM STDIN";
  PGresult* res = PQexec(conn_->get(), sql.c_str());
  const bool copy_in = PQresultStatus(res) == PGRES_COPY_IN;
  std::string err = PQresultErrorMessage(res);
  PQclear(res);
  while (!err.empty() && err.back() == '\n') err.pop_back();
  if (!copy_in) return Status::FailedPrecondition("cannot load " + what_ + ": " + err);
  active_ = true;
  return Status::OK();
}

Status CopyIn::Add(const pb::Tuple& row, uint64_t copies) {
  RETURN_IF_ERROR(CheckKinds(row.kinds(), static_cast<size_t>(row.values_size())));
  const size_t start = buffer_.size();
  if (copies > 0) AppendCopyTextRow(&buffer_, row);
  return Repeat(start, copies);
}

Status CopyIn::AddImage(const ChangeImage& image) {
  RETURN_IF_ERROR(CheckKinds(image.kinds, image.values.size()));
  const size_t start = buffer_.size();
  AppendCopyTextRow(&buffer_, image.kinds, image.values);
  return Repeat(start, 1);
}

Status CopyIn::CheckKinds(std::string_view kinds, size_t values) const {
  if (kinds.find('?') != std::string_view::npos) {
    return Status::Corruption("a row of " + what_ +
                              " holds a TOAST value that was never captured; the restore "
                              "would not be exact");
  }
  if (kinds.find_first_not_of("ntb") != std::string_view::npos) {
    return Status::Corruption("a row of " + what_ + " holds an unresolved column");
  }
  if (values < kinds.size()) {
    return Status::Corruption("a row of " + what_ + " has fewer values than columns");
  }
  return Status::OK();
}

Status CopyIn::AddRowKey(const pb::Relation& rel, std::string_view rowkey, uint64_t copies) {
  const size_t start = buffer_.size();
  if (copies > 0) RETURN_IF_ERROR(AppendCopyTextFromRowKey(&buffer_, rel, rowkey, &scratch_));
  return Repeat(start, copies);
}

Status CopyIn::Repeat(size_t start, uint64_t copies) {
  // Duplicates of a multiset row are encoded once.
  const size_t line = buffer_.size() - start;
  for (uint64_t i = 1; i < copies; i++) buffer_.append(buffer_, start, line);
  rows_ += copies;
  if (buffer_.size() >= kPieceBytes) return Send();
  return Status::OK();
}

Status CopyIn::Send() {
  if (PQputCopyData(conn_->get(), buffer_.data(), static_cast<int>(buffer_.size())) != 1) {
    return Status::Unavailable("load of " + what_ + " failed: " + conn_->LastError());
  }
  buffer_.clear();
  return Status::OK();
}

Status CopyIn::End(Status st) {
  if (!active_) return st;
  active_ = false;
  if (st.ok() && !buffer_.empty()) st = Send();
  if (PQputCopyEnd(conn_->get(), st.ok() ? nullptr : "pgtrail: load aborted") != 1) {
    return Status::Unavailable("load of " + what_ + " failed: " + conn_->LastError());
  }
  while (PGresult* r = PQgetResult(conn_->get())) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && st.ok()) {
      std::string err = PQresultErrorMessage(r);
      while (!err.empty() && err.back() == '\n') err.pop_back();
      st = Status::FailedPrecondition("load of " + what_ + " failed: " + err);
    }
    PQclear(r);
  }
  return st;
}

}  // namespace pgtrail
