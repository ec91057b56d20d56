//! Process shutdown: the one future every serving role waits on (SIGINT or SIGTERM), so the
//! gateway, the embedded server and a storage node drain in-flight requests the same way. A leaf
//! module: the roles depend on it, it depends on none of them.

use tracing::info;

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    info!("shutdown signal received: draining in-flight requests");
}
