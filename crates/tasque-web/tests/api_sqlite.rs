//! The dashboard's pages and actions on sqlite: the shared suite in `support::suite`.

mod support;

dashboard_suite!(sqlite);
