# The broker alone, driven over raw ZeroMQ by fake shards and clients
# (python3-zmq): joining, routing, dead letters, loss, the directory, control
# operations, the hash store, CURVE, malformed input, signals, options.
add_test(NAME integration_broker
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_broker.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_broker PROPERTIES TIMEOUT 300)
