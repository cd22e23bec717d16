// A fresh directory under /tmp for one test, removed with its contents when
// the test's fixture goes away.
#ifndef PGTRAIL_TESTS_UNIT_TEMP_DIR_H_
#define PGTRAIL_TESTS_UNIT_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace pgtrail::testing {

class TempDir {
 public:
  // path() is empty if the directory could not be made: check it in SetUp().
  explicit TempDir(const std::string& name) {
    std::string tmpl = "/tmp/pgtrail-" + name + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pgtrail::testing

#endif  // PGTRAIL_TESTS_UNIT_TEMP_DIR_H_
