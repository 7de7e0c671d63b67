/**
 * Node security: encrypted secrets with master-key rotation, AES-256-GCM encryption service, node
 * CA and certificates for mutual TLS, token auth and role-based authorization.
 *
 * @packageDocumentation
 */
export * as Authorization from "./Authorization.js"
export * as CertificateAuthority from "./CertificateAuthority.js"
export * as Encryption from "./Encryption.js"
export * as MasterKey from "./MasterKey.js"
export * as SecretsManager from "./SecretsManager.js"
export * as Security from "./Security.js"
export * as SecurityComponent from "./SecurityComponent.js"
export * as SecurityError from "./SecurityError.js"
export * as SecuritySettings from "./SecuritySettings.js"
