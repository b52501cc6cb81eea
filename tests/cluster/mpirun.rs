//! `mpirun` as the cluster tests and benchmark run it: on this machine
//! alone, over loopback, as root in a container if need be, with more ranks
//! than cores.

use std::process::Command;

/// `mpirun -n RANKS`, to be followed by the program and its arguments.
pub fn mpirun(ranks: u32) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["-n", &ranks.to_string()])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("OMPI_MCA_oob_tcp_if_include", "lo");
    command
}
