-- MLflow's basic-auth app keeps its users and grants in a database of its own: the database_uri
-- of basic_auth.ini (infra/secrets/mlflow-auth.example.yaml), which `mlflow server` opens when it
-- starts, so a missing role or database is a crash loop. The postgres image runs this file once,
-- on an empty volume, as POSTGRES_USER; on a volume initialised before it existed, run it by hand
-- (docs/deploy.md, step 3). The password is the mlflow-db Secret's auth-password, read from its
-- mounted file so it is in no env value, no process argument and no log line.
\set ON_ERROR_STOP on
\set auth_password `cat "$MLFLOW_AUTH_DB_PASSWORD_FILE"`
CREATE ROLE mlflow_auth LOGIN PASSWORD :'auth_password';
-- The role owns its database (MLflow's migrations create the tables there); no other role but the
-- superuser may connect to it.
CREATE DATABASE mlflow_auth OWNER mlflow_auth;
REVOKE ALL ON DATABASE mlflow_auth FROM PUBLIC;
