#ifndef DISTILL_SERVER_STORAGE_MIGRATIONS_H_
#define DISTILL_SERVER_STORAGE_MIGRATIONS_H_

#include <string>
#include <vector>

namespace distill {

// One numbered SQL file from migrations/; version N is Migrations()[N - 1].
struct Migration {
  std::string name;
  std::string sql;
};

// Embedded at build time (migrations/embed.cmake), in version order.
const std::vector<Migration>& Migrations();

}  // namespace distill

#endif  // DISTILL_SERVER_STORAGE_MIGRATIONS_H_
