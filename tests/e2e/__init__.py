"""End-to-end tests: a real etcd and kube-apiserver, the Netmaker emulator as its own process,
and the real `kaput-not run` process. Run them with `scripts/e2e`."""
