//! Subscribers' digests: who is owed what (`assemble`), rendering (`render`, templates in
//! templates/), the outbox and sending (`outbox`, lettre over SMTP).

pub mod assemble;
pub mod email;
pub mod links;
pub mod notices;
pub mod outbox;
pub mod render;
pub mod schedule;
pub mod smtp;
pub mod topic;
