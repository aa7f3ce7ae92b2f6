//! The scheduler: picks a node for every pending pod through a plugin framework (filter, score,
//! reserve, bind) as kube-scheduler does, and binds it through pods/binding.
