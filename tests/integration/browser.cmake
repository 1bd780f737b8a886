# The browser test: headless Chromium (Debian's) drives /skick.js and the demo
# page (examples/www) against skick-node with hello.so. run_browser_test.sh
# installs what is missing (chromium, node, npm: apt as root; playwright-core
# under the build directory) and exits 77, reported as skipped, when it cannot.
# Included from tests/integration/CMakeLists.txt.
if(SKICK_BUILD_EXAMPLES)
    add_test(NAME integration_browser
             COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_browser_test.sh ${PROJECT_BINARY_DIR})
    set_tests_properties(integration_browser PROPERTIES
        TIMEOUT 600
        SKIP_RETURN_CODE 77
        LABELS "integration;browser")
endif()
