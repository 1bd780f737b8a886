# tools.so's command executor with real processes (test_tools.py): a broker,
# a back shard that allows /usr/bin/* and one that allows nothing.
add_test(NAME integration_tools
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_tools.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_tools PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                                                  LABELS integration)
