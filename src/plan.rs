//! The run plan: a scenario compiled once into what the run acts on. The
//! criteria are parsed, the faults are typed actions per target; a plan
//! that compiles needs no checking again, and nothing is parsed twice.
//! Validation compiles the same plan, so what validates is what runs.

use crate::criteria::{self, Criterion};
use crate::faults::{self, Planned};
use crate::scenario::{Invalid, Scenario};

/// What a run does besides sending its schedule.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Checked at the end.
    pub checks: Vec<Criterion>,
    /// Checked on every tick; the first failure stops the run.
    pub abort_on: Vec<Criterion>,
    /// The fault timeline, in the scenario's order.
    pub faults: Vec<Planned>,
}

impl Plan {
    /// Compiles `s`; the first invalid value is named by its dotted key.
    pub fn compile(s: &Scenario) -> Result<Plan, Invalid> {
        let parse = |list: &[String], key: &str| {
            list.iter()
                .enumerate()
                .map(|(i, expression)| {
                    criteria::parse(expression).map_err(|e| Invalid {
                        key: format!("{key}[{i}]"),
                        message: e.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Plan {
            checks: parse(&s.criteria.checks, "criteria.checks")?,
            abort_on: parse(&s.criteria.abort_on, "criteria.abort_on")?,
            faults: faults::plan(s)?,
        })
    }

    /// The checks, then the abort_on expressions: every criterion of the verdict.
    pub fn every_criterion(&self) -> impl Iterator<Item = &Criterion> {
        self.checks.iter().chain(&self.abort_on)
    }

    /// Whether a fault acts on the network, so the clients under test must
    /// go through the harness's proxy.
    pub fn needs_proxy(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.action, faults::Action::Network { .. }))
    }
}
