//! The dashboard's pages and actions on mysql: the shared suite in `support::suite`.

mod support;

dashboard_suite!(mysql);
