//! `/openapi.json`: the OpenAPI 3 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api_error::{ErrorBody, ErrorDetail};
use crate::routes::{admin, events, jobs, misc, outputs};
use crate::tracker::RecentJob;
use crate::views::{
    AttemptView, JobErrorView, JobList, JobView, OutputView, SubmitRequest, Submitted, TimingsView,
};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A tenant's API key, or the admin key"))
                    .build(),
            ),
        );
    }
}

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(title = "comfy-pool", description = "ComfyUI fleet pool: jobs, events, outputs, admin"),
    paths(
        jobs::submit, jobs::get, jobs::list, jobs::cancel, jobs::preview,
        events::job_events, events::pool_events,
        outputs::node_file, outputs::ws_image,
        admin::list_servers, admin::add_server, admin::remove_server, admin::drain_server,
        admin::list_blocks, admin::reset_blocks, admin::stats, admin::new_key,
        misc::healthz, misc::readyz, misc::metrics,
    ),
    components(schemas(
        SubmitRequest, Submitted, JobView, JobList, AttemptView, OutputView, JobErrorView,
        TimingsView, ErrorBody, ErrorDetail, RecentJob,
        admin::ServerView, admin::AddServer, admin::BlockView, admin::ResetBlocks,
        admin::ResetDone, admin::QueueDepth, admin::StatsView, admin::NewKeyRequest,
        admin::NewKeyView,
    )),
    modifiers(&Bearer),
    tags(
        (name = "jobs", description = "Submit, follow and fetch jobs (tenant or admin key)"),
        (name = "admin", description = "The fleet (admin key)"),
        (name = "service", description = "Health, readiness, metrics (no key)"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "OpenAPI 3 JSON")))]
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
