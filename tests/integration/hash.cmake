# Hashes on every backend (test_hash_conformance.py): the conformance module
# (hash_conformance_app.c) run on a standalone shard (in-process backend) and
# on the back shards of a cluster (the broker's store), two shards racing on
# add and incr, the broker's hash op itself, and the broker killed under
# pending operations. skickctl hash against a real broker: test_hash_cli.py.
add_library(skick_hash_conformance_app MODULE ${CMAKE_CURRENT_LIST_DIR}/hash_conformance_app.c)
set_target_properties(skick_hash_conformance_app PROPERTIES PREFIX ""
                                                        OUTPUT_NAME hash_conformance_app)
target_link_libraries(skick_hash_conformance_app PRIVATE skick)
add_test(NAME integration_hash_conformance
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_hash_conformance.py
                 ${PROJECT_BINARY_DIR})
set_tests_properties(integration_hash_conformance PROPERTIES TIMEOUT 300)
add_test(NAME integration_hash_cli
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_hash_cli.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_hash_cli PROPERTIES TIMEOUT 300)
