//! The `temporal` CLI's config file (`temporal.toml`) and its profiles, as that CLI reads them:
//! a flag or a TEMPORAL_* variable wins, then the profile (`--profile`/TEMPORAL_PROFILE, or
//! `default`), then the built-in defaults. The file is parsed by `temporalio-common`'s envconfig,
//! the SDK's own reader of it.

use temporalio_common::envconfig::{
    ClientConfigProfile, DataSource, LoadClientConfigProfileOptions, load_client_config_profile,
};

use crate::TemporalArgs;

/// Whether a flag or a variable gave the argument `id` (not its built-in default), wherever
/// on the command line a global flag sat: what [`TemporalArgs::apply_profile`] needs to know.
pub fn set_by_user(matches: &clap::ArgMatches, id: &str) -> bool {
    let given = |matches: &clap::ArgMatches| {
        matches
            .value_source(id)
            .is_some_and(|source| source != clap::parser::ValueSource::DefaultValue)
    };
    given(matches) || matches.subcommand().is_some_and(|(_, sub)| given(sub))
}

impl TemporalArgs {
    /// Fills what the user did not set from the config file's profile. `set_by_user` tells,
    /// by argument id ("address", "namespace"), whether a flag or variable gave the value:
    /// those two have built-in defaults, so their value alone cannot tell.
    pub fn apply_profile(&mut self, set_by_user: impl Fn(&str) -> bool) -> anyhow::Result<()> {
        let options = LoadClientConfigProfileOptions::builder()
            .maybe_config_source(
                self.config_file
                    .as_ref()
                    .map(|file| DataSource::Path(file.display().to_string())),
            )
            .maybe_config_file_profile(self.profile.clone())
            // clap has read the TEMPORAL_* variables already, and they win over the file.
            .disable_env(true)
            .build();
        // Its error holds a non-Send cause, so it is kept as words.
        let profile = load_client_config_profile(options, None).map_err(|error| {
            anyhow::anyhow!(
                "reading profile {:?} of the temporal CLI's config file: {error}",
                self.profile.as_deref().unwrap_or("default")
            )
        })?;
        self.fill_from(profile, set_by_user);
        Ok(())
    }

    fn fill_from(&mut self, profile: ClientConfigProfile, set_by_user: impl Fn(&str) -> bool) {
        if let Some(address) = profile.address.filter(|_| !set_by_user("address")) {
            self.address = address;
        }
        if let Some(namespace) = profile.namespace.filter(|_| !set_by_user("namespace")) {
            self.namespace = namespace;
        }
        self.api_key = self.api_key.take().or(profile.api_key);
        let Some(tls) = profile.tls else { return };
        self.tls = self.tls.or(tls.disabled.map(|disabled| !disabled));
        fill_pem(
            &mut self.tls_ca_path,
            &mut self.tls_ca_data,
            tls.server_ca_cert,
        );
        fill_pem(
            &mut self.tls_cert_path,
            &mut self.tls_cert_data,
            tls.client_cert,
        );
        fill_pem(
            &mut self.tls_key_path,
            &mut self.tls_key_data,
            tls.client_key,
        );
        self.tls_server_name = self.tls_server_name.take().or(tls.server_name);
        self.tls_disable_host_verification |= tls.disable_host_verification;
    }
}

/// A PEM input from the profile, unless the user gave it either way (a path or the text).
fn fill_pem(
    path: &mut Option<std::path::PathBuf>,
    data: &mut Option<String>,
    from_profile: Option<DataSource>,
) {
    if path.is_some() || data.is_some() {
        return;
    }
    match from_profile {
        Some(DataSource::Path(file)) => *path = Some(file.into()),
        Some(DataSource::Data(bytes)) => *data = Some(String::from_utf8_lossy(&bytes).into_owned()),
        // DataSource is non-exhaustive.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file in the temp directory, removed on drop.
    struct ConfigFile(std::path::PathBuf);

    impl ConfigFile {
        fn with(name: &str, text: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("deployctl-{name}-{}.toml", std::process::id()));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }
    }

    impl Drop for ConfigFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const FILE: &str = r#"
[profile.default]
address = "127.0.0.1:7233"

[profile.staging]
address = "temporal.staging.internal:7233"
namespace = "deploys"
api_key = "from-the-file"
[profile.staging.tls]
server_name = "temporal.staging"
server_ca_cert_path = "/etc/ca.pem"
"#;

    fn args(profile: Option<&str>, config: &ConfigFile) -> TemporalArgs {
        TemporalArgs {
            profile: profile.map(String::from),
            config_file: Some(config.0.clone()),
            ..Default::default()
        }
    }

    #[test]
    fn a_named_profile_fills_what_no_flag_set() {
        let config = ConfigFile::with("named", FILE);
        let mut temporal = args(Some("staging"), &config);
        temporal.apply_profile(|_| false).unwrap();
        assert_eq!(temporal.address, "temporal.staging.internal:7233");
        assert_eq!(temporal.namespace, "deploys");
        assert_eq!(temporal.api_key.as_deref(), Some("from-the-file"));
        assert_eq!(
            temporal.tls_server_name.as_deref(),
            Some("temporal.staging")
        );
        assert_eq!(temporal.tls_ca_path, Some("/etc/ca.pem".into()));
    }

    #[test]
    fn flags_and_variables_win_over_the_profile() {
        let config = ConfigFile::with("flags", FILE);
        let mut temporal = args(Some("staging"), &config);
        temporal.address = "127.0.0.1:9999".into();
        temporal.api_key = Some("from-a-flag".into());
        temporal.apply_profile(|id| id == "address").unwrap();
        assert_eq!(temporal.address, "127.0.0.1:9999");
        assert_eq!(temporal.namespace, "deploys");
        assert_eq!(temporal.api_key.as_deref(), Some("from-a-flag"));
    }

    #[test]
    fn an_unknown_profile_is_an_error_that_names_it() {
        let config = ConfigFile::with("unknown", FILE);
        let error = args(Some("prod"), &config)
            .apply_profile(|_| false)
            .unwrap_err();
        assert!(format!("{error:#}").contains("prod"), "{error:#}");
    }

    #[test]
    fn no_profile_named_takes_default_and_flags_still_win() {
        let config = ConfigFile::with("none", FILE);
        let mut temporal = args(None, &config);
        temporal.namespace = "mine".into();
        temporal.apply_profile(|id| id == "namespace").unwrap();
        assert_eq!(temporal.address, "127.0.0.1:7233");
        assert_eq!(temporal.namespace, "mine");
    }
}
