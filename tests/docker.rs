//! `docker://` against a private dockerd: the daemon's image is exported
//! through the Engine API and extracted; a second run reuses the
//! extraction without exporting; an image the daemon lacks falls back to
//! its registry, as upstream does.

use auroraboot_tests::oci::{DockerDaemon, tar_of};
use auroraboot_tests::{RunExt, Sandbox};

#[test]
fn docker_images_come_from_the_local_daemon() {
    let daemon = DockerDaemon::start();
    daemon.load(
        "kairos/dockerfixture:v1",
        &[
            tar_of(&[("etc/hostname", b"lower"), ("etc/motd", b"hi")]),
            tar_of(&[("etc/hostname", b"from-docker")]),
        ],
    );
    let sb = Sandbox::new();
    let build = |image: &str| {
        sb.tarball_build(image)
            .env("DOCKER_HOST", &daemon.host)
            .run()
    };
    build("docker://kairos/dockerfixture:v1")
        .success()
        .stderr_has("exported docker://kairos/dockerfixture:v1");
    assert_eq!(
        sb.tarball_file("etc/hostname").as_deref(),
        Some("from-docker")
    );
    let run = build("docker://kairos/dockerfixture:v1")
        .success()
        .stderr_has("using the rootfs extracted earlier");
    assert!(
        !run.stderr.contains("exported"),
        "exported again: {}",
        run.stderr
    );
    let docker_dir = sb.state_dir().join("docker");
    assert!(
        std::fs::read_dir(&docker_dir).unwrap().next().is_none(),
        "the exported archive is not kept"
    );

    // Not in the daemon: the registry is tried next (here: nothing listens).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    build(&format!("docker://{closed}/kairos/absent:v1"))
        .failure()
        .stderr_has("the docker daemon has no such image; pulling")
        .stderr_has("fetching the manifest");
}
