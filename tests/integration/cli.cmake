# skickctl and the client library (tests/integration/test_cli.py): usage,
# keygen, every command against a mock broker (python3-zmq), and a real
# cluster (skick-broker + skick-node --broker + examples/accumulator.so)
# started with `skickctl up`. Exit status 77 (skipped) means the real-cluster
# part could not run; the test prints MISSING lines saying why.
add_test(NAME integration_cli
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_cli PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77)
