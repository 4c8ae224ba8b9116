# ArbCriterion.cmake - register every Criterion test of a binary as its own
# ctest test, so ctest counts, filters and reports them one by one.
#
# The list is read from `<binary> --list` after each build (like CMake's
# gtest_discover_tests), so adding a Test() needs no CMake edit. GPU tests
# print "arb-skip: <reason>" when they cannot run; ctest reports those as
# skipped, not passed.
set(ARB_CRITERION_DISCOVER_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/ArbCriterionDiscover.cmake)

function(arb_add_criterion_tests target)
  cmake_parse_arguments(ARG "" "" "LABELS" ${ARGN})
  set(ctest_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND}
            -D TEST_BINARY=$<TARGET_FILE:${target}>
            -D TEST_TARGET=${target}
            -D TEST_LABELS=${ARG_LABELS}
            -D CTEST_FILE=${ctest_file}
            -P ${ARB_CRITERION_DISCOVER_SCRIPT}
    VERBATIM)
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${ctest_file})
endfunction()
