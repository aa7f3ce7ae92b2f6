//! The controller-manager: independent reconcile loops that drive observed cluster state toward the
//! desired state, each a pure `reconcile` core in its own module behind a thin informer shell.
