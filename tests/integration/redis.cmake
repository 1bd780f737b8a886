# The Redis hash backend against a real redis-server (test_redis.py): the
# session module it drives, and the suite (python3-websockets, redis-server
# and redis-cli from Debian's redis-server and redis-tools).
add_library(skick_redis_test_app MODULE ${CMAKE_CURRENT_LIST_DIR}/redis_app.c)
set_target_properties(skick_redis_test_app PROPERTIES PREFIX "" OUTPUT_NAME redis_test_app)
target_link_libraries(skick_redis_test_app PRIVATE skick)
add_test(NAME integration_redis
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_redis.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_redis PROPERTIES TIMEOUT 300)
