//! Reusable views. They render what they are given and fetch nothing.

pub mod copy_button;
pub mod data_table;
pub mod form;
pub mod layout;
pub mod link_checker;
pub mod live;
pub mod load_error;
pub mod pricing_table;
pub mod quota_meter;
pub mod usage_chart;
