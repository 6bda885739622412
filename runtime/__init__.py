"""dad.runtime"""
