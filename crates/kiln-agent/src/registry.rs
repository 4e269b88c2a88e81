//! The one table of tools: lookup by name, specs for the model, and the tool-state merger the
//! session manager consults when two branches changed the same tool.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_llm::ToolSpec;
use kiln_types::state::{Resolver, ToolMerge, ToolMerger};
use serde::Serialize;
use serde_json::Value;

use crate::tool::Tool;
use crate::tools;

/// The registered tools, by name.
#[derive(Clone, Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

/// A tool as `GET /v1/tools` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// The name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Whether calls change the session.
    pub writes: bool,
    /// JSON schema of the arguments.
    pub parameters: Value,
}

impl Registry {
    /// Returns an empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Returns the registry with Kiln's built-in tools.
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        r.register(Arc::new(tools::MaterialsAnalyzer));
        r.register(Arc::new(tools::BayesianOptimizer));
        r.register(Arc::new(tools::Notebook));
        r.register(Arc::new(tools::SessionSearch));
        r.register(Arc::new(tools::RecordDiscovery));
        r.register(Arc::new(tools::LinkDiscoveries));
        r.register(Arc::new(tools::UserMemory));
        r
    }

    /// Adds (or replaces) a tool; a custom tool is one more `impl Tool` and this call.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.name().to_owned(), tool);
    }

    /// Returns the tool called `name`, or whose name a provider was sent as `name`
    /// (`units__convert` for the MCP tool `units.convert`, see `kiln_llm::wire_tool_name`).
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name).or_else(|| {
            name.contains("__")
                .then(|| {
                    self.tools
                        .iter()
                        .find(|(k, _)| k.contains('.') && kiln_llm::wire_tool_name(k) == name)
                        .map(|(_, t)| t)
                })
                .flatten()
        })
    }

    /// Returns the tool names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    /// Returns the specs the model is given.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.infos()
            .into_iter()
            .map(|t| ToolSpec {
                name: t.name,
                description: t.description,
                parameters: t.parameters,
            })
            .collect()
    }

    /// Returns every tool with its schema.
    pub fn infos(&self) -> Vec<ToolInfo> {
        self.tools
            .values()
            .map(|t| ToolInfo {
                name: t.name().to_owned(),
                description: t.description().to_owned(),
                writes: t.writes(),
                parameters: t.schema(),
            })
            .collect()
    }
}

impl ToolMerger for Registry {
    fn merge_tool(
        &self,
        tool: &str,
        base: Option<&Value>,
        ours: &Value,
        theirs: &Value,
        resolver: &Resolver,
    ) -> Option<ToolMerge> {
        self.tools.get(tool)?.merge(base, ours, theirs, resolver)
    }

    fn describe_tool_change(
        &self,
        tool: &str,
        from: Option<&Value>,
        to: Option<&Value>,
    ) -> Option<Vec<String>> {
        self.tools.get(tool)?.describe_change(from, to)
    }

    fn report_tool(&self, tool: &str, state: &Value) -> Option<String> {
        self.tools.get(tool)?.report(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::{ToolContext, ToolError, ToolOutput};
    use futures::future::BoxFuture;

    struct Named(&'static str);

    impl Tool for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn description(&self) -> &str {
            ""
        }
        fn schema(&self) -> Value {
            serde_json::json!({"type": "object"})
        }
        fn call<'a>(
            &'a self,
            _ctx: &'a ToolContext,
            _args: Value,
        ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
            Box::pin(async { Ok(ToolOutput::default()) })
        }
    }

    #[test]
    fn a_namespaced_tool_is_found_by_the_name_a_provider_was_sent() {
        let mut r = Registry::builtin();
        r.register(Arc::new(Named("units.convert")));
        assert_eq!(r.get("units.convert").unwrap().name(), "units.convert");
        assert_eq!(r.get("units__convert").unwrap().name(), "units.convert");
        assert!(r.get("units__other").is_none());
        assert!(r.get("materials__analyzer").is_none());
        assert_eq!(
            r.get("materials_analyzer").unwrap().name(),
            "materials_analyzer"
        );
    }
}
