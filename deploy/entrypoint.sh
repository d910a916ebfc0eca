#!/bin/sh
# georep: entrypoint of the images that read secrets only from their environment
# (Distribution, nats-server); compose mounts it and runs it with the image's
# command as arguments. Before that command runs:
#
#   1. NAME_FILE=path     NAME becomes the file's content (trailing newlines dropped),
#                         as every georep service does for its own *_FILE variables.
#   2. NAME_TEMPLATE=text NAME becomes text with each ${VAR} replaced by VAR's value.
#                         VAR must be set, and its value must hold no double quote,
#                         backslash or line break: templates put values inside quoted
#                         strings (YAML, nats-server config).
#
# Step 1 runs first, so NAME_TEMPLATE_FILE gives a template that step 2 expands,
# and templates may refer to NAME_FILE results (not to other templates' results).
# NAME_FILE and NAME_TEMPLATE are removed from the environment afterwards
# (Distribution would read any REGISTRY_* variable as a config override).
set -eu

ge_nl='
'

ge_fail() {
  printf 'georep entrypoint: %s\n' "$*" >&2
  exit 64
}

# The set variables whose names end in $1, without it, in name order.
ge_names() {
  env | sed -n "s/^\([A-Za-z_][A-Za-z0-9_]*\)$1=.*/\1/p" | sort -u | while read -r ge_n; do
    eval "[ \"\${${ge_n}$1+set}\" = set ]" && printf '%s\n' "$ge_n"
  done
}

# ge_expand TEXT WHAT: sets ge_expanded to TEXT with ${VAR} references replaced.
ge_expand() {
  ge_rest=$1
  ge_out=
  while :; do
    case $ge_rest in
      *'${'*) ;;
      *) break ;;
    esac
    ge_out=$ge_out${ge_rest%%'${'*}
    ge_rest=${ge_rest#*'${'}
    case $ge_rest in
      *'}'*) ;;
      *) ge_fail "$2: unterminated \${" ;;
    esac
    ge_var=${ge_rest%%'}'*}
    ge_rest=${ge_rest#*'}'}
    case $ge_var in
      '' | [0-9]* | *[!A-Za-z0-9_]*) ge_fail "$2: \${$ge_var} is not a variable reference" ;;
    esac
    eval "ge_isset=\${${ge_var}+set}"
    [ "$ge_isset" = set ] || ge_fail "$2 refers to \${$ge_var}, which is not set"
    eval "ge_val=\$$ge_var"
    case $ge_val in
      *'"'* | *'\'* | *"$ge_nl"*) ge_fail "$2: the value of $ge_var holds a double quote, a backslash or a line break" ;;
    esac
    ge_out=$ge_out$ge_val
  done
  ge_expanded=$ge_out$ge_rest
}

[ $# -gt 0 ] || ge_fail "usage: entrypoint.sh COMMAND [ARG...]"

for ge_name in $(ge_names _FILE); do
  eval "ge_isset=\${${ge_name}+set}"
  [ "$ge_isset" != set ] || ge_fail "set either $ge_name or ${ge_name}_FILE, not both"
  eval "ge_path=\$${ge_name}_FILE"
  [ -f "$ge_path" ] && [ -r "$ge_path" ] || ge_fail "${ge_name}_FILE: cannot read $ge_path"
  ge_value=$(cat "$ge_path")
  [ -n "$ge_value" ] || ge_fail "${ge_name}_FILE: $ge_path is empty"
  export "$ge_name=$ge_value"
  unset "${ge_name}_FILE"
done

for ge_name in $(ge_names _TEMPLATE); do
  eval "ge_template=\$${ge_name}_TEMPLATE"
  ge_expand "$ge_template" "${ge_name}_TEMPLATE"
  export "$ge_name=$ge_expanded"
  unset "${ge_name}_TEMPLATE"
done

exec "$@"
