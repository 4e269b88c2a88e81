//! `record_discovery` and `link_discoveries`: findings and the relations between them, as
//! state events on the branch.

use futures::future::BoxFuture;
use kiln_types::StateEvent;
use kiln_types::state::{DiscoverySource, LINK_RELATIONSHIPS};
use serde_json::{Value, json};

use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, only_keys, opt_str_arg, str_arg};

/// Records a discovery (a finding with its type, materials, evidence and confidence).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordDiscovery;

/// Links two discoveries (supports, contradicts, extends, …).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkDiscoveries;

fn strings(args: &Value, key: &str) -> Result<Vec<String>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ToolError::InvalidArguments(format!("`{key}` must be an array of strings"))
                })
            })
            .collect(),
        Some(_) => Err(ToolError::InvalidArguments(format!(
            "`{key}` must be an array of strings"
        ))),
    }
}

impl Tool for RecordDiscovery {
    fn expensive(&self) -> bool {
        false
    }

    fn name(&self) -> &str {
        "record_discovery"
    }

    fn description(&self) -> &str {
        "Record a research finding (discovery) in the session: its type (for example \
         structure_property, novel_synthesis, stability_insight, phase_relationship), a \
         description, the materials concerned (default: the current focus), evidence node ids \
         and a confidence from 0 to 1."
    }

    fn schema(&self) -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["description"],
            "properties": {
                "type": {"type": "string", "description": "Category of the finding (default structure_property)"},
                "description": {"type": "string"},
                "materials": {"type": "array", "items": {"type": "string"}},
                "evidence": {"type": "array", "items": {"type": "string"}, "description": "Node ids that support it"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}
            }
        })
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            only_keys(
                &args,
                &["type", "description", "materials", "evidence", "confidence"],
            )?;
            let description = str_arg(&args, "description")?.trim().to_owned();
            let kind = opt_str_arg(&args, "type")?
                .unwrap_or("structure_property")
                .to_owned();
            let mut materials = strings(&args, "materials")?;
            if materials.is_empty() {
                materials.extend(ctx.state.focus.material.clone());
            }
            let evidence = strings(&args, "evidence")?;
            let confidence = match args.get("confidence") {
                None | Some(Value::Null) => None,
                // Three decimals: models (and f32 planners) send 0.5899999737739563.
                Some(v) => Some(
                    (v.as_f64().ok_or_else(|| {
                        ToolError::InvalidArguments("`confidence` must be a number".into())
                    })? * 1000.0)
                        .round()
                        / 1000.0,
                ),
            };
            let event = StateEvent::Discovery {
                id: None,
                discovery_type: kind.clone(),
                description: description.clone(),
                materials: materials.clone(),
                evidence,
                confidence,
                source: DiscoverySource::Manual,
            };
            event
                .validate(&ctx.state)
                .map_err(ToolError::InvalidArguments)?;
            let about = if materials.is_empty() {
                String::new()
            } else {
                format!(" (materials: {})", materials.join(", "))
            };
            Ok(ToolOutput::new(
                format!("Recorded {kind} discovery: {description}{about}"),
                json!({"type": kind, "description": description, "materials": materials}),
            )
            .with_event(event))
        })
    }
}

impl Tool for LinkDiscoveries {
    fn expensive(&self) -> bool {
        false
    }

    fn name(&self) -> &str {
        "link_discoveries"
    }

    fn description(&self) -> &str {
        "Link two recorded discoveries by id with a relationship."
    }

    fn schema(&self) -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["from", "to", "relationship"],
            "properties": {
                "from": {"type": "string", "description": "Discovery id"},
                "to": {"type": "string", "description": "Discovery id"},
                "relationship": {"type": "string", "enum": LINK_RELATIONSHIPS},
                "notes": {"type": "string"}
            }
        })
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            only_keys(&args, &["from", "to", "relationship", "notes"])?;
            let from = str_arg(&args, "from")?.to_owned();
            let to = str_arg(&args, "to")?.to_owned();
            let relationship = str_arg(&args, "relationship")?.to_owned();
            let notes = opt_str_arg(&args, "notes")?.map(str::to_owned);
            let event = StateEvent::DiscoveryLink {
                from: from.clone(),
                to: to.clone(),
                relationship: relationship.clone(),
                notes,
            };
            event
                .validate(&ctx.state)
                .map_err(ToolError::InvalidArguments)?;
            Ok(ToolOutput::new(
                format!("Linked discovery {from} {relationship} {to}"),
                json!({"from": from, "to": to, "relationship": relationship}),
            )
            .with_event(event))
        })
    }
}
