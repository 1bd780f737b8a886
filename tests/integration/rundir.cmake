# skickctl's run directory against another local user (nobody: needs root,
# else exit 77, skipped) and the repair of a killed broker by scale and up
# (tests/integration/test_rundir.py).
add_test(NAME integration_rundir
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_rundir.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_rundir PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
