# Writes OUTPUT, a C++ source holding every migrations/NNN_*.sql file in
# order as kMigrations. Run at build time so a changed file is re-embedded.
file(GLOB sql_files "${SOURCE_DIR}/[0-9][0-9][0-9]_*.sql")
list(SORT sql_files)
# DROP_NEWEST: the schema one migration older (the previous release's, for
# tests/e2e_upgrade_test.sh).
if(DROP_NEWEST)
  list(POP_BACK sql_files)
endif()
set(body "")
foreach(f ${sql_files})
  file(READ "${f}" sql)
  get_filename_component(name "${f}" NAME)
  string(APPEND body "    {\"${name}\", R\"distill_sql(${sql})distill_sql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp"
"// Generated from migrations/*.sql by migrations/embed.cmake. Do not edit.
#include \"server/storage/migrations.h\"

namespace distill {

const std::vector<Migration>& Migrations() {
  static const auto* const kMigrations = new std::vector<Migration>{
${body}  };
  return *kMigrations;
}

}  // namespace distill
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
