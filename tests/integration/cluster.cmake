# Shards through a real broker (test_cluster.py): the test module loaded by
# the back shards, and the suite itself (python3-websockets, python3-zmq).
add_library(skick_cluster_test_app MODULE ${CMAKE_CURRENT_LIST_DIR}/cluster_app.c)
set_target_properties(skick_cluster_test_app PROPERTIES PREFIX "" OUTPUT_NAME cluster_test_app)
target_link_libraries(skick_cluster_test_app PRIVATE skick)
add_test(NAME integration_cluster
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_cluster PROPERTIES TIMEOUT 600)
# Faults (test_cluster_faults.py): monitors of a killed shard, clients asking
# it, shards the broker does not admit (no broker, CURVE, protocol version).
add_test(NAME integration_cluster_faults
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster_faults.py
                 ${PROJECT_BINARY_DIR})
set_tests_properties(integration_cluster_faults PROPERTIES TIMEOUT 600)
# Prometheus metrics of the broker, a front and a back shard (test_metrics.py;
# promtool from Debian's prometheus package).
add_test(NAME integration_metrics
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_metrics PROPERTIES TIMEOUT 300)
