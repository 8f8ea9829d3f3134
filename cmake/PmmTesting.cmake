# pmm_add_test(NAME SOURCES a.cc b.cc LIBS lib... [PROPERTIES prop value ...])
# One GoogleTest executable; each TEST becomes its own CTest case, so `ctest -j`
# runs them in parallel. Tests that share a machine-wide resource (huge pages,
# SysV limits) say so with PROPERTIES RESOURCE_LOCK <name>.
include(GoogleTest)
find_package(GTest REQUIRED)

function(pmm_add_test name)
  cmake_parse_arguments(T "C" "" "SOURCES;LIBS;PROPERTIES" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main
                        GTest::gmock pmm::warnings)
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 120
    PROPERTIES TIMEOUT 600 ${T_PROPERTIES})
endfunction()

# pmm_add_layer(NAME DEPS lib... [TEST_DEPS lib...])
# One layer of DESIGN.md = one folder = one static library `pmm::NAME`, made
# of every *.cc in the folder except *_test.cc and main.cc. Each *_test.cc
# becomes a test executable NAME_<file stem>. Adding a file needs no edit here.
function(pmm_add_layer name)
  cmake_parse_arguments(L "" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  list(REMOVE_ITEM srcs ${tests} ${CMAKE_CURRENT_SOURCE_DIR}/main.cc)
  if(srcs)
    add_library(pmm_${name} STATIC ${srcs})
    target_link_libraries(pmm_${name} PUBLIC pmm::base ${L_DEPS} PRIVATE pmm::warnings)
  else()
    add_library(pmm_${name} INTERFACE)
    target_link_libraries(pmm_${name} INTERFACE pmm::base ${L_DEPS})
  endif()
  add_library(pmm::${name} ALIAS pmm_${name})
  foreach(t ${tests})
    get_filename_component(stem ${t} NAME_WE)
    pmm_add_test(${name}_${stem} SOURCES ${t} LIBS pmm::${name} ${L_TEST_DEPS})
  endforeach()
endfunction()
