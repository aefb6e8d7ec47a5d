//! `studyflow plan SPEC`: compile a spec and print its plan.

use anyhow::Context as _;

use crate::Context;
use crate::render::{self, FileReport};
use crate::validate::{display_path, display_source};
use crate::{EXIT_FINDINGS, EXIT_OK};
use crate::{PlanArgs, PlanFormat};

pub fn run(args: &PlanArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let (calendar, today) = crate::dates(&args.dates)?;
    let bytes = std::fs::read(&args.spec)
        .with_context(|| format!("cannot read {}", args.spec.display()))?;
    let checked = studyflow_plan::check(&bytes, &calendar, Some(today));
    let report = FileReport {
        path: display_path(&args.spec),
        source: display_source(&bytes),
        checked: checked.checked,
    };
    let failed = report.checked.errors() > 0;
    if !report.checked.diagnostics.is_empty() {
        // Findings go to stderr, so stdout is the plan alone and a pipe gets only it.
        let text = render::human::render(std::slice::from_ref(&report), ctx.color);
        ctx.err.write_all(text.as_bytes())?;
    }
    let plan = match (checked.plan, failed) {
        (Some(plan), false) => plan,
        _ => {
            writeln!(
                ctx.err,
                "studyflow: error: {} has errors; no plan is printed for a spec that does not validate",
                report.path
            )?;
            return Ok(EXIT_FINDINGS);
        }
    };
    let text = match args.format {
        PlanFormat::Table => studyflow_plan::render::table(&plan),
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&studyflow_plan::render::json(&plan))?;
            s.push('\n');
            s
        }
        PlanFormat::Dot => studyflow_plan::render::dot(&plan),
        PlanFormat::Mermaid => studyflow_plan::render::mermaid(&plan),
    };
    ctx.out.write_all(text.as_bytes())?;
    ctx.out.flush()?;
    Ok(EXIT_OK)
}
