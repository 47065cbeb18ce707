//! What `package` prints: the zip's contents and the Azure CLI commands that deploy it.

use std::fmt::Write as _;

use super::{PackageReport, TaskHub};

pub(super) fn render(report: &PackageReport) -> String {
    let mut out = String::new();
    let zip = report.zip.display().to_string();
    let total: u64 = report.files.iter().map(|f| f.size).sum();
    let _ = writeln!(
        out,
        "wrote {zip}: {} files, {} KiB before compression",
        report.files.len(),
        total.div_ceil(1024)
    );
    for file in &report.files {
        let _ = writeln!(out, "  {:o}  {:>10}  {}", file.mode, file.size, file.path);
    }
    match &report.target {
        Some(target) => {
            let _ = writeln!(
                out,
                "{} built for {} ({} profile): {}",
                report.bin, target.triple, target.profile, target.reason
            );
        }
        None => {
            let _ = writeln!(
                out,
                "{}: the executable given with --executable",
                report.bin
            );
        }
    }

    let app = &report.bin;
    let (hub, hub_setting) = match &report.host.task_hub {
        TaskHub::Setting(setting) => ("default".to_owned(), Some(setting.as_str())),
        TaskHub::Name(name) => (name.clone(), None),
        TaskHub::Unset => ("default".to_owned(), None),
    };
    let storage = storage_account_name(app);
    let connection = &report.host.connection_setting;
    let mut settings = "FUNCTIONS_WORKER_RUNTIME=custom ".to_owned();
    if let Some(setting) = hub_setting {
        let _ = write!(settings, "{setting}=$TASKHUB ");
    }
    let hub_part = if matches!(report.host.task_hub, TaskHub::Unset) {
        ";TaskHub=$TASKHUB"
    } else {
        ""
    };
    let _ = write!(
        out,
        r#"
Deploy it with the Azure CLI (az login first; the names below are suggestions, edit them):

  RG={app}-rg LOCATION=westus2 APP={app} SCHEDULER={app}-scheduler TASKHUB={hub} STORAGE={storage} IDENTITY={app}-identity

  # The Durable Task Scheduler and its task hub (an empty IP allow-list would refuse every caller)
  az group create --name $RG --location $LOCATION
  az extension add --upgrade --name durabletask
  az durabletask scheduler create --resource-group $RG --name $SCHEDULER --location $LOCATION --sku-name consumption --ip-allowlist '["0.0.0.0/0"]'
  az durabletask taskhub create --resource-group $RG --scheduler-name $SCHEDULER --name $TASKHUB

  # The function app: Linux, custom handler, on a plan the scheduler supports (Elastic Premium here)
  az storage account create --resource-group $RG --name $STORAGE --location $LOCATION --sku Standard_LRS
  az functionapp plan create --resource-group $RG --name $APP-plan --location $LOCATION --sku EP1 --is-linux
  az functionapp create --resource-group $RG --name $APP --plan $APP-plan --storage-account $STORAGE --os-type Linux --runtime custom --functions-version 4

  # Its managed identity, allowed to use the scheduler
  az identity create --resource-group $RG --name $IDENTITY
  az functionapp identity assign --resource-group $RG --name $APP --identities "$(az identity show -g $RG -n $IDENTITY --query id -o tsv)"
  az role assignment create --assignee-object-id "$(az identity show -g $RG -n $IDENTITY --query principalId -o tsv)" --assignee-principal-type ServicePrincipal --role "Durable Task Data Contributor" --scope "$(az durabletask scheduler show -g $RG -n $SCHEDULER --query id -o tsv)"

  # App settings (local.settings.json is not deployed): the handler runtime, the task hub, the scheduler
  az functionapp config appsettings set --resource-group $RG --name $APP --settings {settings}"{connection}=Endpoint=$(az durabletask scheduler show -g $RG -n $SCHEDULER --query properties.endpoint -o tsv){hub_part};Authentication=ManagedIdentity;ClientID=$(az identity show -g $RG -n $IDENTITY --query clientId -o tsv)"

  # The package
  az functionapp deployment source config-zip --resource-group $RG --name $APP --src {zip}
"#
    );
    out
}

/// Storage account names are 3 to 24 lower-case letters and digits, unique in Azure: the app's name squeezed into
/// that, as a starting point.
fn storage_account_name(app: &str) -> String {
    let mut name: String = app
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(20)
        .collect();
    name.push_str("data");
    name
}

#[cfg(test)]
mod tests {
    use super::storage_account_name;

    #[test]
    fn storage_names_fit_azure_rules() {
        for app in ["my-app", "A", "a_very_long_application_name_indeed"] {
            let name = storage_account_name(app);
            assert!((3..=24).contains(&name.len()), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{name}"
            );
        }
    }
}
