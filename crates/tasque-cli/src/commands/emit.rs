//! `tasque emit NAME [PAYLOAD]`: emit an event, waking every job waiting for it.

use std::sync::Arc;

use serde_json::{json, Value};
use tasque_durable::Store;

use crate::args::EmitArgs;
use crate::fail::CliError;
use crate::output;

/// An event ready to emit, checked before the database is touched.
#[derive(Debug)]
pub struct Event {
    name: String,
    payload: Value,
}

/// Checks the arguments (reading the payload from stdin for `-`) without touching the
/// database, so bad input writes nothing. No payload means `null`.
pub fn build(args: &EmitArgs) -> Result<Event, CliError> {
    let payload = match args.payload.as_deref() {
        None => Value::Null,
        Some("-") => super::enqueue::json_from_stdin("payload")?,
        Some(text) => serde_json::from_str(text)
            .map_err(|error| CliError::Usage(format!("payload is not valid JSON: {error}")))?,
    };
    tasque_durable::validate::validate_name("event", &args.name).map_err(CliError::from_store)?;
    Ok(Event {
        name: args.name.clone(),
        payload,
    })
}

/// Emits the event and reports how many jobs it woke.
pub async fn run(store: Arc<dyn Store>, event: Event, json_output: bool) -> Result<(), CliError> {
    let woken = store.emit_event(&event.name, event.payload).await?;
    if json_output {
        output::json(&json!({ "event": event.name, "woken": woken }));
    } else {
        let jobs = if woken == 1 { "job" } else { "jobs" };
        println!("emitted {}: woke {woken} waiting {jobs}", event.name);
    }
    Ok(())
}
