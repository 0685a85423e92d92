#!/bin/sh
# azd `postprovision` hook (azure.yaml): put the targets' API key into Key Vault, so the
# first run after `azd up` can call the targets. The app reads the secret named
# TARGET_API_KEY_SECRET_NAME from AZURE_KEY_VAULT_NAME (both are main.bicep outputs, which
# azd passes to hooks as environment variables).
#
# The value comes from the environment variable TARGET_API_KEY, e.g.
#   TARGET_API_KEY='...' azd up          (or: azd hooks run postprovision)
# It is written to a private temporary file for `az --file`, so it never appears on a
# command line (ps) or in azd's .azure/<env>/.env. Without TARGET_API_KEY the hook keeps an
# existing secret, or prints the exact command to run, and never fails the deployment.
#
# Writing needs Key Vault Secrets Officer on the vault, which main.bicep grants to
# AZURE_PRINCIPAL_ID; a fresh role assignment can take a minute to apply, so `set` is
# retried (POSTPROVISION_RETRIES times, POSTPROVISION_RETRY_SECONDS apart).
set -eu

vault="${AZURE_KEY_VAULT_NAME:?AZURE_KEY_VAULT_NAME is not set: run this hook through azd (azd hooks run postprovision)}"
name="${TARGET_API_KEY_SECRET_NAME:-target-api-key}"
retries="${POSTPROVISION_RETRIES:-6}"
delay="${POSTPROVISION_RETRY_SECONDS:-10}"

say() { echo "postprovision: $*"; }

if [ -z "${TARGET_API_KEY:-}" ]; then
  if az keyvault secret show --vault-name "$vault" --name "$name" --query id --output tsv >/dev/null 2>&1; then
    say "TARGET_API_KEY is not set; Key Vault $vault already has secret '$name', left as it is."
    exit 0
  fi
  say "TARGET_API_KEY is not set, and Key Vault $vault has no secret '$name' (or you cannot read it)."
  say "The app cannot call the targets until the secret exists. Set it with:"
  echo
  echo "  az keyvault secret set --vault-name $vault --name $name --value \"<the targets' API key>\""
  echo
  say "or export TARGET_API_KEY and run: azd hooks run postprovision"
  exit 0
fi

umask 077
value_file=$(mktemp)
trap 'rm -f "$value_file"' EXIT INT TERM
printf '%s' "$TARGET_API_KEY" >"$value_file"

attempt=1
while :; do
  if az keyvault secret set --vault-name "$vault" --name "$name" --file "$value_file" --encoding utf-8 \
    --output none; then
    say "set secret '$name' in Key Vault $vault."
    exit 0
  fi
  if [ "$attempt" -ge "$retries" ]; then
    say "could not set secret '$name' in Key Vault $vault after $attempt attempts."
    say "Writing needs the Key Vault Secrets Officer role on the vault (main.bicep gives it to"
    say "AZURE_PRINCIPAL_ID). Check with: az role assignment list --scope \$(az keyvault show --name $vault --query id -o tsv)"
    exit 1
  fi
  say "attempt $attempt failed (a new role assignment can take a minute); retrying in ${delay}s."
  attempt=$((attempt + 1))
  sleep "$delay"
done
