//! The fault tests' seams: points where a pass can be held (and killed there, with SIGKILL, as a
//! timeout or a power cut would) with everything before them committed. Inert unless the test
//! environment variables are set.

/// With `TINBAO_TEST_HOLD_BEFORE=STAGE` in the environment, says so on stderr and waits for ever
/// before `stage`.
pub(crate) async fn hold_before(stage: &str) {
    if std::env::var_os("TINBAO_TEST_HOLD_BEFORE").is_some_and(|v| v == stage) {
        eprintln!("tinbao: holding before {stage} (TINBAO_TEST_HOLD_BEFORE)");
        std::future::pending::<()>().await;
    }
}

/// `TINBAO_TEST_CLUSTER_BATCH`, if set to a number: clustering's batch size, so that a test's few
/// items make several batches.
pub(crate) fn cluster_batch(default: usize) -> usize {
    std::env::var("TINBAO_TEST_CLUSTER_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}
