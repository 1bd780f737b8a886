# skickctl top (tests/integration/test_top.py): a cluster started with
# `skickctl up`, top in a detached tmux session read with capture-pane
# (shards and roles, msgs/s moving with a burst, sort keys, q and SIGTERM
# restoring the terminal, a SIGSTOPped shard shown as not answering), and
# the snapshots without a terminal (plain, --json). Exit 77: tmux missing.
add_test(NAME integration_top
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_top.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_top PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                                                LABELS integration)

# skickctl up --metrics (tests/integration/test_up_metrics.py): the ports
# from the names, the record and ps, promtool check metrics on every
# endpoint, the ports kept by scale and by repairs after kill -9; and
# deploy/prometheus/prometheus.yml (promtool check config) and
# deploy/grafana/skick-dashboard.json (every metric name it uses exposed by
# the running cluster). Exit 77: promtool missing.
add_test(NAME integration_up_metrics
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_up_metrics.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_up_metrics PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                                                       LABELS integration)

# GET /skick/cluster.json of a front shard with --cluster-view
# (tests/integration/test_cluster_view.py): its shape and headers, counters
# and rates moving with websocket traffic, 405, 404 without the option, a
# silent client. The demo page's live panel is checked by integration_browser.
add_test(NAME integration_cluster_view
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_cluster_view.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_cluster_view PROPERTIES TIMEOUT 300 LABELS integration)
