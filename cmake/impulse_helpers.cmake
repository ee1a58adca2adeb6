# impulse_add_test(NAME LABEL SOURCES... LIBS...)
# One GoogleTest executable registered with ctest under a label:
# "unit" (fast, no servers), "integration" (real redis-server / cluster
# processes) or "heavy" (quality and speed runs that .ci/run leaves out).
find_package(GTest REQUIRED)
include(GoogleTest)

function(impulse_add_test name label)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  # Tests share the cores (ctest -j): LibTorch's OpenMP threads must sleep,
  # not spin, while they wait, as the workers' do (deploy/local-cluster).
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${label} ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE"
    DISCOVERY_TIMEOUT 60
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
endfunction()
