# The warning flags, defined once. Every target links `pmm::warnings`.
add_library(pmm_warnings INTERFACE)
add_library(pmm::warnings ALIAS pmm_warnings)
target_compile_options(pmm_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wconversion -Wshadow
  $<$<BOOL:${PMM_WERROR}>:-Werror>)
