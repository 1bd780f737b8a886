# The broker's hash store in Redis (skick-broker --hash, skickctl up --hash)
# against a real redis-server (test_broker_redis.py): the conformance suite
# on the back shards of a cluster whose broker keeps Redis, skickctl hash
# checked with redis-cli, a broker restart, the faults, up/scale/down.
add_test(NAME integration_broker_redis
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_broker_redis.py
                 ${PROJECT_BINARY_DIR})
set_tests_properties(integration_broker_redis PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
