//! The MCP server handler (rmcp's `ServerHandler`): server info and capabilities,
//! and the tools and resources of `tools.rs` and `resources.rs`. One value per
//! MCP session (or per stateless request); all share the app's state.

use actix_web::web;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use rmcp_actix_web::transport::on_request_extensions;

use super::{resources, tools};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

#[derive(Clone)]
pub struct Orchestrator {
    state: web::Data<AppState>,
}

impl Orchestrator {
    pub fn new(state: web::Data<AppState>) -> Orchestrator {
        Orchestrator { state }
    }
}

const INSTRUCTIONS: &str = "Runs long-lived multi-agent LLM workflows. Start one with \
orchestrate_research (a task) or orchestrate_search (a query); they return a workflow id \
at once, or with wait=true report progress and return the result when done. Follow a \
workflow with get_orchestration_status or the resource orchestrator://workflows/{id}; \
read its Markdown report at orchestrator://workflows/{id}/report.md.";

/// The API key of the HTTP request that carried this MCP request (each request is
/// authenticated on its own, also within a session), as the `authenticate`
/// middleware resolved it; `mod.rs` hands it over. Missing = fail closed.
fn caller(ctx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    on_request_extensions(&ctx.extensions)
        .and_then(|ext| ext.get::<Caller>())
        .cloned()
        .ok_or_else(|| {
            let e = ApiError::Unauthorized("no credentials were checked for this request".into());
            resources::to_mcp(&e)
        })
}

impl ServerHandler for Orchestrator {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "mcp-orchestrator",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::all()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::all().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller(&context)?;
        tools::call(&self.state, &caller, request, context)
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = caller(&context)?;
        resources::list(&self.state, &caller, request.and_then(|r| r.cursor)).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = caller(&context)?;
        resources::read(&self.state, &caller, &request.uri)
            .await
            .map(Into::into)
    }
}
