//! `waflow completions SHELL` and `waflow man`: shell completions and the
//! man page, generated from the clap definitions of [`super::Cli`], so
//! they always match the commands.

use clap::{CommandFactory, ValueEnum};

use super::{Cli, CliError};

/// The shells completions are made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (install in /usr/share/bash-completion/completions/waflow)
    Bash,
    /// zsh (install as _waflow in a folder of $fpath)
    Zsh,
    /// fish (install in ~/.config/fish/completions/waflow.fish)
    Fish,
}

/// Prints the completion script of `shell`.
pub fn completions(shell: Shell) -> Result<(), CliError> {
    let mut command = Cli::command();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Into memory first: the generator panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut command, "waflow", &mut script);
    print(&script)
}

/// Prints the man page (roff), `waflow(1)`.
pub fn man() -> Result<(), CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    print(&page)
}

fn print(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}
