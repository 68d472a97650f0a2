#!/bin/bash
# `make install PREFIX=...`: the binary, a man page made from every command's --help, and the
# shell completions swift-argument-parser generates (bash, zsh, fish), under PREFIX (DESTDIR
# prepended when set, for packaging).
# Usage: install.sh MANET PREFIX
set -euo pipefail
MANET="$1"
ROOT="${DESTDIR:-}$2"
bin="$ROOT/bin"; man="$ROOT/share/man/man1"
bash_dir="$ROOT/share/bash-completion/completions"; zsh_dir="$ROOT/share/zsh/site-functions"
fish_dir="$ROOT/share/fish/vendor_completions.d"
install -d "$bin" "$man" "$bash_dir" "$zsh_dir" "$fish_dir"
install -m 755 "$MANET" "$bin/manet"

# The man page: each command's --help as a preformatted section (roff: backslashes doubled, a
# leading dot or quote protected), so the page says exactly what --help says.
roff() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"; }
version="$("$MANET" --version)"
{
  echo ".TH MANET 1 \"\" \"manet $version\" \"User Commands\""
  echo ".SH NAME"
  echo "manet \\- MA-Net facial-expression recognition, with ONNX as its native format"
  echo ".SH SYNOPSIS"
  echo ".B manet"
  echo "COMMAND [MODEL-OR-SOURCE] [--option value ...]"
  echo ".SH DESCRIPTION"
  echo ".nf"
  "$MANET" --help | roff
  echo ".fi"
  echo ".SH COMMANDS"
  for command in $("$MANET" --help | awk '/^SUBCOMMANDS:/ {on=1; next} on && /^  [a-z]/ {print $1} on && /^$/ {exit}'); do
    echo ".SS manet $command"
    echo ".nf"
    "$MANET" "$command" --help | roff
    echo ".fi"
  done
  echo ".SH EXIT STATUS"
  echo "0 success, 1 verification mismatch, 2 error, 64 usage error, 130 interrupted."
} >"$man/manet.1.tmp"
mv "$man/manet.1.tmp" "$man/manet.1"

"$MANET" --generate-completion-script bash >"$bash_dir/manet"
"$MANET" --generate-completion-script zsh >"$zsh_dir/_manet"
"$MANET" --generate-completion-script fish >"$fish_dir/manet.fish"
echo "installed $bin/manet, $man/manet.1, completions for bash ($bash_dir/manet), zsh ($zsh_dir/_manet), fish ($fish_dir/manet.fish)"
