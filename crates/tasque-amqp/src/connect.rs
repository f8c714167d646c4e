//! Connection properties wired to tokio.

use lapin::ConnectionProperties;

/// Connection properties that run lapin on the current tokio runtime (its
/// executor and reactor), with `name` as the connection name the broker
/// shows. Every connection this crate opens uses them; use them too when
/// opening your own `lapin` connections next to a consumer.
///
/// Must be called inside a tokio runtime.
pub fn connection_properties(name: &str) -> ConnectionProperties {
    ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current())
        .with_connection_name(name.into())
}
