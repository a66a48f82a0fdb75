//! Reusable views. They render what they are given and fetch nothing.

pub mod layout;
pub mod link_checker;
pub mod pricing_table;
