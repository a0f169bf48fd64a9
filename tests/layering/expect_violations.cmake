# Runs check_layering.cmake on fixture/, a tree that breaks each kind of rule once, and passes
# only if the checker fails and names every break (file and line, include, rule).
#
#   cmake -P tests/layering/expect_violations.cmake

cmake_minimum_required(VERSION 3.22)

set(checker "${CMAKE_CURRENT_LIST_DIR}/check_layering.cmake")
set(fixture "${CMAKE_CURRENT_LIST_DIR}/fixture")

set(expected
  # (a) a file of a folder includes a folder above it
  "common/config.cpp:3 includes \"eval/plot.h\": common may include nothing of ours"
  # (b) DEPENDS lists an outside library no file uses
  "common/CMakeLists.txt:1: ocm_common's DEPENDS lists yaml-cpp, but none of its files includes <yaml-cpp/...>@SC@ drop it"
  # (b) a file uses an outside library DEPENDS does not list
  "eval/CMakeLists.txt:1: eval/plot.cpp:3 includes <nlohmann/json.hpp>, but ocm_eval's DEPENDS does not list nlohmann_json::nlohmann_json@SC@ add it"
  # (b) a file includes a folder whose library DEPENDS does not list
  "eval/CMakeLists.txt:1: eval/plot.cpp:5 includes \"common/config.h\", but ocm_eval's DEPENDS does not list ocm_common@SC@ add it")

execute_process(
  COMMAND "${CMAKE_COMMAND}" "-DROOT=${fixture}" -P "${checker}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
message(STATUS "check_layering.cmake on ${fixture} exited with ${result}:\n${output}")

if(result EQUAL 0)
  message(FATAL_ERROR "check_layering.cmake passed on ${fixture}, which breaks the rules; expected it to fail")
endif()
set(missing 0)
foreach(line IN LISTS expected)
  string(REPLACE "@SC@" ";" line "${line}")
  string(FIND "${output}" "${line}" at)
  if(at EQUAL -1)
    message("missing from the checker's output: ${line}")
    math(EXPR missing "${missing} + 1")
  endif()
endforeach()
if(missing GREATER 0)
  message(FATAL_ERROR "check_layering.cmake failed on ${fixture} but did not report ${missing} of the expected violations (listed above)")
endif()
message(STATUS "check_layering.cmake reports every violation in ${fixture}")
