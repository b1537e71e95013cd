//! Pass/fail criteria: small expressions over the report's figures.
