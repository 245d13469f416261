//! Where backups live: a local folder or any rclone remote, behind one `Storage` contract.

pub mod rclone_args;
