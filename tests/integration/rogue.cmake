# A rogue local peer (test_rogue_peer.py, python3-zmq and python3-websockets)
# against a cluster without CURVE: control operations on the shard endpoint,
# HELLO with the wrong role, forged directory entries and forged senders are
# refused (issue 16, items 1 and 2). The back shards run cluster_test_app.so
# (tests/integration/CMakeLists.txt).
add_test(NAME integration_rogue_peer
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_rogue_peer.py
                 ${PROJECT_BINARY_DIR})
set_tests_properties(integration_rogue_peer PROPERTIES TIMEOUT 120)
