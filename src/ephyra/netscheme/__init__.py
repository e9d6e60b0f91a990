"""A parallel control plane on the same VIPs: the environment model, the deployment
information of its three modes (default, isolated, cutover), the applier that carries a
network scheme out on Linux, and the cutover from the old plane to the new one."""
