//! The dashboard's pages and actions on postgres: the shared suite in `support::suite`.

mod support;

dashboard_suite!(postgres);
